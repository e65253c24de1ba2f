import OccurCore
