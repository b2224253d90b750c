"""fitter.observe"""
