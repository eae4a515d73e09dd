"""Pure billing domain: money, periods, catalog and prices, invoices and their lines.

Nothing here performs I/O; storage and services build on these types.
"""
