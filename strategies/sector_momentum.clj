;; Sector momentum, rebalanced weekly.
;; Half the book follows the two sector ETFs with the best average daily return
;; over 20 days; the other half holds the calmest of three defensive funds
;; (lowest 20-day volatility of daily returns).
;; Shows: filter, select-top, select-bottom, moving-average-return, stdev-return,
;; weight-equal, group, :rebalance-frequency :weekly.
(defsymphony
 "Sector momentum"
 {:asset-class "EQUITIES", :rebalance-frequency :weekly}
 (weight-equal
  [(group
    "Leaders"
    [(filter
      (moving-average-return {:window 20})
      (select-top 2)
      [(asset "XLK" "Technology Select Sector SPDR")
       (asset "XLE" "Energy Select Sector SPDR")
       (asset "XLF" "Financial Select Sector SPDR")
       (asset "XLV" "Health Care Select Sector SPDR")
       (asset "XLI" "Industrial Select Sector SPDR")])])
   (group
    "Calm harbour"
    [(filter
      (stdev-return {:window 20})
      (select-bottom 1)
      [(asset "TLT" nil) (asset "GLD" nil) (asset "BIL" nil)])])]))
