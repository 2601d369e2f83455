;; Risk-parity blend, rebalanced monthly.
;; Three sleeves (stocks, bonds, gold) weighted by the inverse of their 30-day
;; volatility. The sleeves are groups, so their volatility is that of their
;; simulated value (a group is a portfolio). The gold sleeve holds gold only
;; when it is calm (20-day price standard deviation under 8 dollars) or just
;; rose two days running (2-day RSI exactly 100); otherwise T-bills.
;; Shows: weight-inverse-volatility over groups, weight-specified in percent,
;; stdev-price, =, :rebalance-frequency :monthly.
(defsymphony
 "Risk-parity blend"
 {:asset-class "EQUITIES", :rebalance-frequency :monthly}
 (weight-inverse-volatility
  30
  [(group "Stocks" [(weight-specified 70 (asset "SPY" nil) 30 (asset "QQQ" nil))])
   (group "Bonds" [(weight-equal [(asset "TLT" nil) (asset "IEF" nil)])])
   (group
    "Gold"
    [(if (or (< (stdev-price "GLD" {:window 20}) 8) (= (rsi "GLD" {:window 2}) 100))
       [(asset "GLD" nil)]
       [(asset "BIL" nil)])])]))
