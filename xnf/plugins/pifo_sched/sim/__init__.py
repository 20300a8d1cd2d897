"""Reference runtime: a discrete-event simulation of a scheduler in front of a link."""
