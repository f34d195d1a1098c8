
BinputJ$l¼>
Dý>¾B…¾ëdÀÃC¿i©¿