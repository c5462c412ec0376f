"""The demo and the benchmark: a scripted leader, generated followers, an outside observer."""
