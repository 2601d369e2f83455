;; SPY trend follower.
;; While SPY closes above its 200-day average, hold a 60/40 mix of stocks and
;; long Treasuries; below it, park everything in 1-3 month T-bills.
;; Shows: defsymphony options, if/else, >, current-price, moving-average-price,
;; weight-specified (fractions), asset with a name.
(defsymphony
 "SPY trend follower"
 {:asset-class "EQUITIES", :rebalance-frequency :daily}
 (if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))
   [(weight-specified
     0.6 (asset "SPY" "SPDR S&P 500 ETF Trust")
     0.4 (asset "TLT" "iShares 20+ Year Treasury Bond ETF"))]
   [(asset "BIL" "SPDR Bloomberg 1-3 Month T-Bill ETF")]))
