"""Backward graphs for captured forward graphs: `joint` traces forward + backward as one FX graph with torch's
own autograd, `partition` splits it into a forward that saves the fewest bytes and a backward that reads them."""
