
BoutputJ"ат>