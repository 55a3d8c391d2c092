"""Promotion: the gate, and the promote and rollback actions on the registry aliases."""
