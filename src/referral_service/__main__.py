"""`python -m referral_service`: the operator CLI, as the `referral-service` command."""

from .cli import main

main(prog_name="referral-service")
