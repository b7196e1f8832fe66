"""Technical indicators: the catalog (one entry per indicator: parameters, outputs, TA-Lib
call) and their computation on bars."""
