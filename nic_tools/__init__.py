"""Coding tools that ship with nic, each a sub-package registered in the `ctc.codecs` group
against the fixed anchor `nic-ref` (docs/contributing-a-tool.md)."""
