"""Neural-network layers used by the reference codec."""

from nic.nn.gdn import GDN, lower_bound

__all__ = ["GDN", "lower_bound"]
