"""The crisis check: finds self-harm, harm to others and medical emergencies in a conversation
before the router sends it anywhere, and answers with the configured crisis response instead."""
