"""Platform: what every layer stands on. AWS clients and codecs, the clock, settings, the table's keys and
indexes, signing and the marketer-file reader. Imports nothing else of Boomerang."""
