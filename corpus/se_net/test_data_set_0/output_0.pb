
BoutputJÑ$ú=Õ4=7£;pZ“=