"""Core pieces shared by every method: the result type, target and baseline
resolution, memory-budgeted chunking, model protection and the method registry."""
