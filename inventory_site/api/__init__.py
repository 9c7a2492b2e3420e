"""What every API endpoint shares: errors, pagination, rate limits, the base view."""
