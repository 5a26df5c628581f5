"""Checkers (pytest, against a live cluster) and static evaluators (offline) for lab 2."""
