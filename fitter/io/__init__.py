"""fitter.io"""
