"""The resource monitor under /api/rest_j/v1/linkisManager/rm/ (Linkis' RMMonitorRest).

The kill endpoints under rm/ are engine endpoints, routed by ``engines.api.urls``.
"""

from django.urls import path

from linkismanager.api import rm_views

urlpatterns = [
    path("userresources", rm_views.UserResourcesView.as_view(), name="rm-user-resources"),
    path("engines", rm_views.EnginesView.as_view(), name="rm-engines"),
    path("applicationlist", rm_views.ApplicationListView.as_view(), name="rm-application-list"),
    path("engineType", rm_views.EngineTypeView.as_view(), name="rm-engine-type"),
    path("allUserResource", rm_views.AllUserResourceView.as_view(), name="rm-all-user-resource"),
    path("get-user-resource", rm_views.GetUserResourceView.as_view(), name="rm-get-user-resource"),
    path("resetResource", rm_views.ResetResourceView.as_view(), name="rm-reset-resource"),
    path("queues", rm_views.QueuesView.as_view(), name="rm-queues"),
    path("queueresources", rm_views.QueueResourcesView.as_view(), name="rm-queue-resources"),
    path("batchqueueresources", rm_views.BatchQueueResourcesView.as_view(), name="rm-batch-queue-resources"),
]
