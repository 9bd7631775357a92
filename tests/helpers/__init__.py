"""Helpers the tests import (constants, builders, assertions); fixtures stay in conftest.py."""
