"""fitter.energy"""
