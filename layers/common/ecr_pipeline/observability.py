"""The one Logger and Metrics of the pipeline; every handler imports these.

Service name, namespace and log level come from the POWERTOOLS_* variables the template sets.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
