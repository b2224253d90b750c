"""fitter.optimize"""
