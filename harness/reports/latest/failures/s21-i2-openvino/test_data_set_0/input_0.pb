
BinputJ"°XD