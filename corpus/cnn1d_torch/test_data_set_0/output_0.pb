
BoutputJ(JÈ>Ä¨>})?FZ7?qb=?öNn?w?XF$¾éž¿IGÀ