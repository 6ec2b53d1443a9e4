"""The review station: operators answer review requests and name new defect types in a browser."""
