"""On-device support for the app: GET /api/models/edge (which edge models fit this device) and
POST /api/inference/decide (the hybrid on-device/server decision)."""
