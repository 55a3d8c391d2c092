"""Helpers shared by the test suite: free ports, throwaway servers, required-or-skip checks."""
