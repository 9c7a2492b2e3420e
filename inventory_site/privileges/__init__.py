"""The application's database role: what it may do, and the command that grants it.

The web, worker and beat processes connect as a role that owns nothing; migrations and
the operator commands that rewrite history connect as the owner (README, "Least
privilege"). ``grants`` holds the rule, ``grant_app_role`` applies it.
"""
