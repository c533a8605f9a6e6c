"""Owner notices: each application's owners are told, once per credential and threshold, what to do about
their own applications' expiring, expired and unused credentials."""
