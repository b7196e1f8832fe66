"""The train loop and the parameters and pieces (optimiser, schedule, class weights, early
stopping) it is assembled from."""
