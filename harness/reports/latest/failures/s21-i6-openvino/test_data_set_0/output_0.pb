
BoutputJ¢‚&>