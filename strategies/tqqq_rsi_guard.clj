;; Leveraged Nasdaq with guards.
;; When QQQ is overbought (10-day RSI above 79) it buys volatility (UVXY).
;; When QQQ is oversold or fell 6 % in a week it buys the dip in TQQQ.
;; Otherwise it holds TQQQ and QQQ while the trend is up and TQQQ has not
;; fallen more than 15 % over two weeks, and T-bills when it has.
;; Trades only when a weight drifts 5 points from target.
;; Shows: nested ifs, <, <=, >=, and, or, not, rsi, cumulative-return,
;; exponential-moving-average-price, max-drawdown, :rebalance-threshold, and a
;; branch with two forms, which share that branch equally (one unit).
(defsymphony
 "TQQQ RSI guard"
 {:asset-class "EQUITIES", :rebalance-frequency :daily, :rebalance-threshold 0.05}
 (weight-equal
  [(if (> (rsi "QQQ" {:window 10}) 79)
     [(asset "UVXY" nil)]
     [(if (or (< (rsi "QQQ" {:window 10}) 30)
              (<= (cumulative-return "QQQ" {:window 5}) -6))
        [(asset "TQQQ" nil)]
        [(if (and (>= (exponential-moving-average-price "QQQ" {:window 20})
                      (moving-average-price "QQQ" {:window 50}))
                  (not (> (max-drawdown "TQQQ" {:window 10}) 15)))
           [(asset "TQQQ" nil) (asset "QQQ" nil)]
           [(asset "BIL" nil)])])])]))
