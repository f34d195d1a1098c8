
BoutputJ÷;u¼