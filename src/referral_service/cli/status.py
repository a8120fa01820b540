"""`referral-service status`: the whole local stack at a glance."""
