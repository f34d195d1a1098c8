

BoutputJ(­,÷=ֿÞr?;&¿¼`R¾ZצV¿3Ll8_T?ֲ
p>ֳװ?נד—?