;; Semiconductor momentum with a PPO switch, rebalanced quarterly.
;; When SOXL's percentage price oscillator is above its signal line, semis have
;; momentum: hold whichever of two sub-strategies has the higher 10-day RSI of
;; its simulated value. Otherwise rotate into the asset with the smallest
;; 60-day drawdown. A filter's children may be groups (ranked by their NAV).
;; Shows: percentage-price-oscillator, percentage-price-oscillator-signal,
;; filter over groups, rsi and max-drawdown as filter metrics, an if without an
;; else inside a group, :rebalance-frequency :quarterly.
(defsymphony
 "SOXL PPO rotation"
 {:asset-class "EQUITIES", :rebalance-frequency :quarterly}
 (if (> (percentage-price-oscillator "SOXL" {:short-window 12, :long-window 26})
        (percentage-price-oscillator-signal
         "SOXL"
         {:short-window 12, :long-window 26, :smooth-window 9}))
   [(filter
     (rsi {:window 10})
     (select-top 1)
     [(group "Leveraged semis" [(asset "SOXL" nil)])
      (group
       "Semis when tech leads"
       [(weight-equal
         [(if (> (cumulative-return "XLK" {:window 20}) 0) [(asset "SOXX" nil)])
          (asset "XLK" nil)])])])]
   [(filter
     (max-drawdown {:window 60})
     (select-bottom 1)
     [(asset "SPY" nil) (asset "TLT" nil) (asset "GLD" nil)])]))
