"""Throwaway Debian hosts (systemd-nspawn in network namespaces) to converge and test against."""
