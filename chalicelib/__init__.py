"""Real-time usage invoicing: domain, storage, services and adapters."""
