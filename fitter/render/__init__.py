"""fitter.render"""
