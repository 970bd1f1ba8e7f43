"""Deciding: sides, statistics, the comparison, budgets and checks, and the verdict every report renders."""
