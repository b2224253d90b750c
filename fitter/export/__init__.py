"""fitter.export"""
