"""Scheduling on simulated traffic: the real Scheduler, a virtual clock, simulated engines."""
