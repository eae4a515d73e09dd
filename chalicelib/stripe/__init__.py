"""Stripe: a small gateway on StripeClient, and how our invoices map onto Stripe invoices."""
