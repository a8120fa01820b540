"""Churnistic referral service."""
