"""Tests of relulab.family: exact values, conventions, input handling, properties, registry and docs."""
