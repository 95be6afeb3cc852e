"""The sensor appliance: capture, decode, reassemble, extract, pre-filter, ship.

Runs alone at a network edge, so it imports none of the centre's packages.
"""
