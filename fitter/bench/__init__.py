"""fitter.bench"""
