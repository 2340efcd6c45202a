"""Tax-free VAT refunds for foreign buyers (seed 002, MinFin Order No. 363; README: tax-free VAT refunds)."""
