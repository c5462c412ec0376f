"""Stage 4 — tracking: positions and broker health in Faust tables, and the history in the database."""
