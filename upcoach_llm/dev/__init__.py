"""Development tools: the stack launcher and test harness, free ports, the settings docs.

Nothing under upcoach_llm outside this package imports it.
"""
